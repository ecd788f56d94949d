// Another package's view of zoo: `import ZooKit`, a cached model by name, any checkpoint by path.
//
//     Consumer NAME CHECKPOINT     e.g. Consumer digits_resnet demo/digits_resnet.pth
//
// Prints each model's output shape and top class for a fixed input, and whether the two agree.
import Foundation
import ZooKit

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: Consumer NAME CHECKPOINT\n".utf8))
    exit(2)
}
do {
    let cached = try Zoo.pretrained(arguments[0])     // from the cache: ZOO_OFFLINE=1 forbids a download
    let loaded = try Zoo.load(path: arguments[1])     // any checkpoint, architecture detected
    let input = try Tensor.zeros([1, 3, 16, 16])
    let a = try cached.forward(input), b = try loaded.forward(input)
    let top = a.argmax()[0]
    print("Zoo.pretrained(\"\(arguments[0])\"): \(cached.name), output \(a.shape), top class \(top)")
    print("Zoo.load(path: \"\(arguments[1])\"): \(loaded.name), output \(b.shape)")
    print("outputs agree: \(a == b)")
    exit(a == b ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("Consumer: \(error.localizedDescription)\n".utf8))
    exit(1)
}
