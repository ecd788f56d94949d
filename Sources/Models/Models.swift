// The Swift VGG and ResNet families arrive with the models issue.
@_exported import Checkpoint
