"""Reproducing the paper: its claims as studies (:mod:`.studies`), a resumable campaign
directory and its scheduler (:mod:`.campaign`), generalisation scores (:mod:`.scores`) and the
report written from the directory alone (:mod:`.report`)."""
