// The OpenID Connect pages (consent, sign-out confirmation, errors) are plain forms: this module only
// brings what every page shares (the header's sign-out button).
import "/static/ui.js";
