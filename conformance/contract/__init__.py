"""The contract as data: requirement IDs and levels (:mod:`.requirements`), and the finding record every check produces (:mod:`.findings`)."""
