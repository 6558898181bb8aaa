"""The pipeline's stages, in data-flow order: detection, 2D keypoints, tracking, smoothing,
windows, lifter input, lifting, placement."""
