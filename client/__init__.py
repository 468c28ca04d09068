"""recsys-serve: a typed Python client of the gRPC API."""
