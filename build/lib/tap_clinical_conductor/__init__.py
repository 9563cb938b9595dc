"""Singer tap for Advarra Clinical Conductor."""
