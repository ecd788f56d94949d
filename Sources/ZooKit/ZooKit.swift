// Catalog, cache, download, import, verify: the library behind the CLI.
@_exported import Models
