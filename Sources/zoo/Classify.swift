import ArgumentParser
import Foundation
import Images
import Models

extension ZooCommand {
    struct Classify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Classify JPEG and PNG images with a pretrained or local model.",
            discussion: """
                Images are decoded and preprocessed as torchvision does with PIL: resize the shorter side \
                (bilinear, antialiased), center-crop, scale to [0, 1], normalise. Folders are walked for \
                .jpg/.jpeg/.png files in sorted order. Exit 1 if any image failed.
                """)

        @Argument(help: "Image files or folders.")
        var inputs: [String]

        @Option(help: "Resize the shorter side to N (default: the model's, else 256).")
        var resize: Int?

        @Option(help: "Center-crop to N x N (default: the model's, else 224).")
        var crop: Int?

        @Flag(help: "Rotate and flip as the EXIF orientation tag says (torchvision with PIL ignores it).")
        var exifTranspose = false

        @Option(help: .hidden)
        var dumpInput: String?

        func validate() throws {
            if let resize, resize < 1 { throw ValidationError("--resize must be at least 1") }
            if let crop, crop < 1 { throw ValidationError("--crop must be at least 1") }
        }

        func run() throws {
            let files = try ImageFiles.expand(inputs)
            let options = DecodeOptions(applyEXIFOrientation: exifTranspose)
            var preprocessing = Preprocessing.imagenet
            if let resize { preprocessing.resize = resize }
            if let crop { preprocessing.crop = crop }
            if let dumpInput {
                // Fidelity checks (Tests/Interop/check_images.py): the batch before normalisation.
                let images = try files.map { try RGBImage(contentsOf: $0, options: options) }
                try NPY.write(try preprocessing.tensor(images, normalize: false), to: dumpInput)
                return
            }
        }
    }
}
