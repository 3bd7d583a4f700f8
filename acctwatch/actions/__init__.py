"""Response: what acctwatch does about an incident (lock backends, the responder, notifications)."""
