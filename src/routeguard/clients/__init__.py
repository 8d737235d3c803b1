"""Client API keys: who may call the router, for which model groups, how fast and for how much.

``clients:`` in the configuration turns them on (absent: the router is open, as before). Keys are
stored as SHA-256 hashes, presented as ``Authorization: Bearer`` (the OpenAI SDK) or
``x-api-key`` (the Anthropic SDK), and known everywhere else by a short key id.
"""

from routeguard.clients.guard import ClientGuard, Ticket
from routeguard.clients.keys import hash_key, key_id
from routeguard.clients.schema import ClientKeyConfig, ClientsConfig

__all__ = ["ClientGuard", "ClientKeyConfig", "ClientsConfig", "Ticket", "hash_key", "key_id"]
