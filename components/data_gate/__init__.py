"""DataGate: stops the run when the data is not fit to train on."""
