"""What every part of drip stands on: settings, errors, Redis key names, the data layout, message types, timing, logs."""
