"""The staff API: the only way people act on orders (see `starter.api.app`)."""
