"""Device targets: profiles (``targets/*.yaml``), this host's facts, emulating a target on
this host, and the pre-flight that predicts what INT8/FP16 should do on a target's CPU."""
