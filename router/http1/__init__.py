"""The worker's HTTP/1 wire side: bytes from a client connection in, exchanges out, and the
proxy's answers and relayed responses back to bytes."""
