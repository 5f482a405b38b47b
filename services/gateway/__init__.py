"""The API gateway: owns users, job records and uploads; records every service's events."""
