"""The vb_keras programs. Run them as bin/<name> from a checkout, or as vb_<name> once installed."""
