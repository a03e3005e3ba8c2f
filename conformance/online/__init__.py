"""The online half of the contract: the ``H-*`` requirements a V2 REST server adds to the F-*, M-* and B-* ones
its answers are judged by."""
