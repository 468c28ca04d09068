"""recsys-serve: the server stage."""
