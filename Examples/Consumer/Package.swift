// swift-tools-version:6.0
// A package that depends on zoo by version, as any other Swift package would. scripts/check-consumer
// builds it in CI against a bare clone of this repository tagged with zoo's version
// (ZOO_PACKAGE_URL); elsewhere, point it at zoo's published repository.
import PackageDescription

let zoo = Context.environment["ZOO_PACKAGE_URL"] ?? "https://github.com/zoo-swift/zoo"

let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: zoo, from: "0.1.0"),
    ],
    targets: [
        .executableTarget(name: "Consumer", dependencies: [.product(name: "ZooKit", package: "zoo")]),
        // The README's "From Swift" snippet, exactly as printed (built, not run: it downloads).
        .executableTarget(name: "Snippet", dependencies: [.product(name: "ZooKit", package: "zoo")]),
    ]
)
