"""Software-defined assets of the platform."""
