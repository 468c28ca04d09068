"""recsys-serve: the exporter stage."""
