"""Loading PEM strings from the config into ssl contexts (ssl only reads files)."""

from __future__ import annotations

import os
import ssl
import tempfile


def load_cert_chain_from_pem(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    # A private directory that lives only as long as the load; the key never stays on disk.
    with tempfile.TemporaryDirectory(prefix="routerd-pem-") as directory:
        os.chmod(directory, 0o700)
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        for path, text in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        context.load_cert_chain(cert_path, key_path)
