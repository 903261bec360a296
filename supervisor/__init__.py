"""routerd: the supervisor, owning NATS, the registry, the shared route table and the workers."""
