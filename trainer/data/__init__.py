"""Reading, generating and splitting rating data."""
