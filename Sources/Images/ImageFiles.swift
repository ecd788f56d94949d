import Foundation

/// Finding images on disk.
public enum ImageFiles {
    /// File name extensions zoo treats as images when it walks a folder (compared lowercased).
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Each path as given when it is not a folder (a missing file then fails when it is read, on
    /// its own); each folder replaced by the image files under it, recursively, in sorted order
    /// (by path, byte-wise).
    public static func expand(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                files.append(path)
                continue
            }
            guard let walker = FileManager.default.enumerator(atPath: path) else {
                throw ImageError.unreadable(file: path, detail: "cannot list the folder")
            }
            var found: [String] = []
            for case let relative as String in walker
            where extensions.contains((relative as NSString).pathExtension.lowercased()) {
                found.append((path as NSString).appendingPathComponent(relative))
            }
            files += found.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        return files
    }
}
