// `import ZooKit` is all a program needs: `Tensor`, `Model` and the rest of Models come with it.
@_exported import Models
@_exported import Images
