import PackagePlugin

/// Builds the files ZooKit must carry inside the binary into Swift string constants (`enum
/// Embedded`), at build time. The files stay the one source you edit; a zoo binary copied alone
/// anywhere still has them, which SwiftPM resources (a bundle beside the binary) would not give.
@main
struct Embed: BuildToolPlugin {
    /// Relative to the package folder.
    static let files = ["catalog.json", "Sources/ZooKit/Resources/torch_check.py",
                        "Sources/ZooKit/Resources/imagenet_categories.txt"]

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let files = Self.files.map { root.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "Embedded.swift")
        return [.buildCommand(displayName: "Embedding \(Self.files.joined(separator: ", ")) in \(target.name)",
                              executable: try context.tool(named: "EmbedTool").url,
                              arguments: [output.path, root.path] + files.map(\.path),
                              inputFiles: files, outputFiles: [output])]
    }
}
