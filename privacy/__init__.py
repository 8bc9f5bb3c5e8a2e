"""Consent, minimisation, redaction, pseudonyms and crypto-shredding (pure)."""
