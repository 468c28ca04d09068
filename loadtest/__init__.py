"""recsys-serve: the loadtest stage."""
