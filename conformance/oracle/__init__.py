"""What the multiplier model owes a request (:mod:`.expect`, exact arithmetic in :mod:`.arithmetic`), and how a response is compared with it (:mod:`.compare`)."""
