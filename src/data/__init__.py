"""The data layer: files, dataset routes and loaders, MNIST, rebuilds, stand-ins, preprocessing and splits.
Nothing here imports the training loop, the experiments or the reports."""
