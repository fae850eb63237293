"""Use cases. Each public function owns one transaction (a unit of work run by `Database.run`) and
applies policy; the web faces and the CLI call these, never the store directly."""
