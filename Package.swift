// swift-tools-version:6.0
import PackageDescription

// ZOO_DEV=1 (set by scripts/test): the kernels run optimised even in debug builds, where an
// -Onone forward pass is 10-50x slower and the numeric tests of `swift test` would take minutes.
// Only zoo's own builds set it: SwiftPM refuses unsafeFlags in a package used by version, so
// without it (any package that depends on zoo) the targets carry none.
let developer = Context.environment["ZOO_DEV"] == "1"

let package = Package(
    name: "zoo",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Checkpoint", targets: ["Checkpoint"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "ZooKit", targets: ["ZooKit"]),
        .library(name: "Images", targets: ["Images"]),
        .executable(name: "zoo", targets: ["zoo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"]), .brew(["libzip"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"]), .brew(["openssl"])]),
        .target(name: "Checkpoint", dependencies: ["CZip", "COpenSSL"]),
        // OpenBLAS on Linux; on Apple platforms BLAS.swift uses Accelerate instead.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        // AVX-512 convolution kernels (C intrinsics, dispatched at run time).
        .target(name: "CKernels", cSettings: developer ? [.unsafeFlags(["-O3"])] : []),
        .target(name: "Models", dependencies: ["Checkpoint", .target(name: "COpenBLAS", condition: .when(platforms: [.linux])), "CKernels"],
                swiftSettings: developer ? [.unsafeFlags(["-O"])] : []),
        // catalog.json and Resources/torch_check.py become string constants at build time (Plugins/Embed):
        // a zoo binary copied alone keeps them, as SwiftPM resources (a bundle beside it) would not.
        .target(name: "ZooKit", dependencies: ["Checkpoint", "Models", "Images"], exclude: ["Resources"], plugins: ["Embed"]),
        .plugin(name: "Embed", capability: .buildTool(), dependencies: ["EmbedTool"]),
        .executableTarget(name: "EmbedTool", path: "Plugins/EmbedTool"),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"]), .brew(["jpeg-turbo"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        // Decoding and resampling loops are optimised in zoo's own debug builds too, like Models.
        .target(name: "Images", dependencies: ["Models", "CTurboJPEG", "CPNG"],
                swiftSettings: developer ? [.unsafeFlags(["-O"])] : []),
        .executableTarget(
            name: "zoo",
            dependencies: ["Checkpoint", "Models", "ZooKit", "Images",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "example", dependencies: ["ZooKit", "Models"], path: "Examples/Pretrained"),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models"], exclude: ["Seed"]),
        .testTarget(name: "ZooKitTests", dependencies: ["ZooKit", "Images"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images"]),
    ]
)

// `swift package generate-documentation` (scripts/test builds the DocC catalogs): a plugin for zoo's
// own builds only, so packages that depend on zoo do not fetch it.
if developer {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}

// The libFuzzer targets exist only for `scripts/fuzz`: they have no `main` of their own.
if Context.environment["ZOO_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "zoo-fuzz", dependencies: ["Checkpoint", "Models"], path: "Fuzz",
                                             swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    package.products.append(.executable(name: "zoo-fuzz", targets: ["zoo-fuzz"]))
}
