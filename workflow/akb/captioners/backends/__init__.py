"""One module per captioner backend, each registering a factory (config entry -> Captioner) with
akb.captioners.register; all are imported on the first lookup of a backend name, so each imports its
implementation (and torch, librosa and the like) inside the factory."""
