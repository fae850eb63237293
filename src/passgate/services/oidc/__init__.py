"""The OpenID Connect provider's services: clients (`registry`), what is stored (`storage`), and the
flows the endpoints run (`flows`). The protocol itself is `passgate.oidc`."""
