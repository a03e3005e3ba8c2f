"""The ODAHU platform's side: model folders and their metadata, archives, manifests, the platform's own validate rules (:mod:`.platform_rules`) and the strict validate step (:mod:`.validate`)."""
