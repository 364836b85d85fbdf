"""One module per text-model backend, each registering a loader with akb.models.register; all are
imported on the first lookup of a backend name, so they import torch and the like inside the loader."""
