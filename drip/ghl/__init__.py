"""Everything GoHighLevel: contact formats, the release handler, its Redis state, locations and business hours."""
