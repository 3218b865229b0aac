//! Planar RGB images in `[0, 1]`: what degradations read and write.

use std::path::Path;

use image::{ImageReader, Rgb32FImage, RgbImage};

use crate::error::{DataError, Result, io_error};

/// Three planar channels of `height * width` samples each, values in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `[3, height, width]` samples, row-major per channel.
    pub data: Vec<f32>,
}

impl Rgb {
    /// A black image.
    pub fn zeros(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0.0; 3 * width * height] }
    }

    /// An image whose every sample is `value`.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Self { width, height, data: vec![value; 3 * width * height] }
    }

    /// Samples per channel.
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// One channel's `[height, width]` samples.
    pub fn channel(&self, channel: usize) -> &[f32] {
        let pixels = self.pixels();
        &self.data[channel * pixels..(channel + 1) * pixels]
    }

    /// One channel's samples, mutable.
    pub fn channel_mut(&mut self, channel: usize) -> &mut [f32] {
        let pixels = self.pixels();
        &mut self.data[channel * pixels..(channel + 1) * pixels]
    }

    /// Converts an 8-bit image.
    pub fn from_rgb8(image: &RgbImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let mut rgb = Self::zeros(width, height);
        let pixels = rgb.pixels();
        for (index, pixel) in image.pixels().enumerate() {
            for channel in 0..3 {
                rgb.data[channel * pixels + index] = f32::from(pixel.0[channel]) / 255.0;
            }
        }
        rgb
    }

    /// Quantises to 8 bits (rounding, clamped), as benchmark files are stored.
    pub fn to_rgb8(&self) -> RgbImage {
        let pixels = self.pixels();
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let index = y as usize * self.width + x as usize;
            image::Rgb(std::array::from_fn(|c| (self.data[c * pixels + index].clamp(0.0, 1.0) * 255.0).round() as u8))
        })
    }

    /// Reads any image file the `image` crate decodes, as RGB in `[0, 1]` (16-bit precision kept).
    pub fn read(path: &Path) -> Result<Self> {
        let decoded = ImageReader::open(path)
            .map_err(io_error(path))?
            .with_guessed_format()
            .map_err(io_error(path))?
            .decode()
            .map_err(|source| DataError::Image { path: path.into(), source })?;
        Ok(Self::from_rgb32f(&decoded.to_rgb32f()))
    }

    /// Converts a float image.
    pub fn from_rgb32f(image: &Rgb32FImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let mut rgb = Self::zeros(width, height);
        let pixels = rgb.pixels();
        for (index, pixel) in image.pixels().enumerate() {
            for channel in 0..3 {
                rgb.data[channel * pixels + index] = pixel.0[channel].clamp(0.0, 1.0);
            }
        }
        rgb
    }

    /// Writes an 8-bit PNG atomically (temp file + rename), so a killed run leaves no half file.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut png = std::io::Cursor::new(Vec::new());
        self.to_rgb8().write_to(&mut png, image::ImageFormat::Png).map_err(|source| DataError::Image { path: path.into(), source })?;
        ipt_core::write_atomically(path, png.get_ref()).map_err(io_error(path))
    }

    /// The `width x height` window at `(left, top)`; samples outside the image are mirrored
    /// (reflect padding without repeating the edge), so any window is valid.
    pub fn crop_reflect(&self, left: isize, top: isize, width: usize, height: usize) -> Self {
        let mut out = Self::zeros(width, height);
        let columns: Vec<usize> = (0..width).map(|x| reflect(left + x as isize, self.width)).collect();
        for channel in 0..3 {
            let source = self.channel(channel);
            let target = out.channel_mut(channel);
            for y in 0..height {
                let row = reflect(top + y as isize, self.height) * self.width;
                for (x, &column) in columns.iter().enumerate() {
                    target[y * width + x] = source[row + column];
                }
            }
        }
        out
    }

    /// Clamps every sample into `[0, 1]`.
    pub fn clamp_unit(mut self) -> Self {
        self.data.iter_mut().for_each(|value| *value = value.clamp(0.0, 1.0));
        self
    }
}

/// Mirrors an index into `0..len` (`-1 -> 1`, `len -> len - 2`), the `reflect` border mode.
pub fn reflect(index: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let folded = index.rem_euclid(period);
    (if folded < len as isize { folded } else { period - folded }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let mirrored: Vec<usize> = (-3..7).map(|index| reflect(index, 4)).collect();
        assert_eq!(mirrored, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(5, 1), 0);
    }

    #[test]
    fn eight_bit_round_trip_is_exact() {
        let image = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 100, 255]));
        assert_eq!(Rgb::from_rgb8(&image).to_rgb8(), image);
    }

    #[test]
    fn crop_inside_the_image_copies_and_outside_mirrors() {
        let mut image = Rgb::zeros(3, 2);
        image.data.iter_mut().enumerate().for_each(|(index, value)| *value = index as f32);
        let crop = image.crop_reflect(1, 0, 2, 2);
        assert_eq!(crop.channel(0), &[1.0, 2.0, 4.0, 5.0]);
        let mirrored = image.crop_reflect(-1, 0, 1, 1);
        assert_eq!(mirrored.channel(2), &[13.0]);
    }

    #[test]
    fn png_write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.png");
        let image = Rgb::from_rgb8(&RgbImage::from_fn(4, 4, |x, y| image::Rgb([x as u8 * 60, y as u8 * 60, 7])));
        image.write_png(&path).unwrap();
        assert_eq!(Rgb::read(&path).unwrap(), image);
    }
}
