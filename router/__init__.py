"""The worker: an aiohttp proxy reading the shared route table without locks."""
