"""Infrastructure every process shares: settings, the database, logging, the Temporal client."""
