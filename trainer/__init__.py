"""recsys-serve: the trainer stage."""
