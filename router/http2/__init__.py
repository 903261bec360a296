"""HTTP/2 for clients on the TLS listener (ALPN `h2`), over the `h2` package."""
