//! Images in and out of the network: planar RGB in `[0, 1]`, with the alpha channel, grayscale
//! and bit depth remembered so the output keeps the input's format.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::Error;

/// The sample layout of a decoded image, restored on output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// 8 bits per sample.
    U8,
    /// 16 bits per sample.
    U16,
    /// 32-bit float samples.
    F32,
}

/// An image as the network sees it: three planar channels in `[0, 1]`, plus what is needed to
/// write it back in its original format.
#[derive(Clone, Debug, PartialEq)]
pub struct Planar {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `[3, height, width]` samples, row-major per channel (gray inputs are replicated).
    pub rgb: Vec<f32>,
    /// `[height, width]` alpha, passed through untouched.
    pub alpha: Option<Vec<f32>>,
    /// Whether the source had one channel (the output then gets one too).
    pub grayscale: bool,
    /// Sample type of the source.
    pub samples: SampleFormat,
}

impl Planar {
    /// Splits `image` into planar RGB and alpha, remembering its format.
    pub fn from_image(image: &DynamicImage) -> Self {
        let color = image.color();
        let samples = sample_format(image);
        let (width, height) = (image.width() as usize, image.height() as usize);
        let pixels = width * height;
        let rgba = image.to_rgba32f();
        let mut rgb = vec![0.0; 3 * pixels];
        let mut alpha = color.has_alpha().then(|| vec![0.0; pixels]);
        for (index, pixel) in rgba.pixels().enumerate() {
            for channel in 0..3 {
                rgb[channel * pixels + index] = pixel.0[channel];
            }
            if let Some(alpha) = alpha.as_mut() {
                alpha[index] = pixel.0[3];
            }
        }
        let grayscale = !color.has_color();
        Self { width, height, rgb, alpha, grayscale, samples }
    }

    /// Rebuilds an image in the source's format from (possibly restored) planar RGB,
    /// clamping to `[0, 1]`; a grayscale source gets the mean of the three channels.
    pub fn to_image(&self) -> DynamicImage {
        let pixels = self.width * self.height;
        let mut rgba = image::Rgba32FImage::new(self.width as u32, self.height as u32);
        for (index, pixel) in rgba.pixels_mut().enumerate() {
            let channel = |c: usize| self.rgb[c * pixels + index].clamp(0.0, 1.0);
            let (r, g, b) = if self.grayscale {
                let mean = (channel(0) + channel(1) + channel(2)) / 3.0;
                (mean, mean, mean)
            } else {
                (channel(0), channel(1), channel(2))
            };
            let a = self.alpha.as_ref().map_or(1.0, |alpha| alpha[index]);
            pixel.0 = [r, g, b, a];
        }
        let full = DynamicImage::ImageRgba32F(rgba);
        let has_alpha = self.alpha.is_some();
        match (self.samples, self.grayscale, has_alpha) {
            (SampleFormat::U8, true, false) => DynamicImage::ImageLuma8(full.to_luma8()),
            (SampleFormat::U8, true, true) => DynamicImage::ImageLumaA8(full.to_luma_alpha8()),
            (SampleFormat::U8, false, false) => DynamicImage::ImageRgb8(full.to_rgb8()),
            (SampleFormat::U8, false, true) => DynamicImage::ImageRgba8(full.to_rgba8()),
            (SampleFormat::U16, true, false) => DynamicImage::ImageLuma16(full.to_luma16()),
            (SampleFormat::U16, true, true) => DynamicImage::ImageLumaA16(full.to_luma_alpha16()),
            (SampleFormat::U16, false, false) => DynamicImage::ImageRgb16(full.to_rgb16()),
            (SampleFormat::U16, false, true) => DynamicImage::ImageRgba16(full.to_rgba16()),
            (SampleFormat::F32, _, false) => DynamicImage::ImageRgb32F(full.to_rgb32f()),
            (SampleFormat::F32, _, true) => full,
        }
    }
}

/// The sample type of `image`.
pub(crate) fn sample_format(image: &DynamicImage) -> SampleFormat {
    match image {
        DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) | DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgba16(_) => {
            SampleFormat::U16
        }
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => SampleFormat::F32,
        _ => SampleFormat::U8,
    }
}

/// The largest image [`read_image`] decodes, in megapixels: a 100-MP photo restores within
/// about 1.4 GiB (`docs/performance.md`), and larger sizes in a header are how decompression
/// bombs start.
pub const DEFAULT_MAX_MEGAPIXELS: f64 = 100.0;

/// Decodes the image at `path`, applying its EXIF orientation; refuses images above
/// [`DEFAULT_MAX_MEGAPIXELS`] (see [`read_image_within`]).
pub fn read_image(path: &Path) -> Result<DynamicImage, Error> {
    read_image_within(path, DEFAULT_MAX_MEGAPIXELS)
}

/// Decodes the image at `path`, applying its EXIF orientation, unless its header declares more
/// than `max_megapixels`: that is refused before any pixel is decoded or allocated, so a small
/// file that claims a huge image fails at once.
pub fn read_image_within(path: &Path, max_megapixels: f64) -> Result<DynamicImage, Error> {
    let reader = ImageReader::open(path).map_err(|error| Error::ReadImage { path: path.to_owned(), reason: error.to_string() })?;
    decode_within(reader, path, max_megapixels)
}

/// Decodes an image already in memory (an upload) as [`read_image_within`] decodes a file;
/// `origin` names it in errors.
pub fn decode_image_within(bytes: &[u8], origin: &Path, max_megapixels: f64) -> Result<DynamicImage, Error> {
    decode_within(ImageReader::new(std::io::Cursor::new(bytes)), origin, max_megapixels)
}

/// Decodes what `reader` reads unless its header declares more than `max_megapixels`.
fn decode_within<R: std::io::BufRead + std::io::Seek>(
    reader: ImageReader<R>,
    path: &Path,
    max_megapixels: f64,
) -> Result<DynamicImage, Error> {
    let fail = |reason: String| Error::ReadImage { path: path.to_owned(), reason };
    let mut reader = reader.with_guessed_format().map_err(|error| fail(error.to_string()))?;
    if reader.format().is_none() {
        return Err(fail("unrecognised image format".into()));
    }
    reader.limits(decoder_limits(max_megapixels));
    let mut decoder = reader.into_decoder().map_err(|error| fail(error.to_string()))?;
    let (width, height) = decoder.dimensions();
    if f64::from(width) * f64::from(height) > max_megapixels * 1e6 {
        return Err(Error::TooLarge { path: path.to_owned(), width, height, max_megapixels });
    }
    let orientation = decoder.orientation().map_err(|error| fail(error.to_string()))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|error| fail(error.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The decoder's own limits for `max_megapixels`: no side above the pixel count and no
/// allocation above that many 32-bit float RGBA pixels (16 bytes each), the widest layout the
/// decoders produce, so every image within the pixel limit also fits the allocation limit.
fn decoder_limits(max_megapixels: f64) -> image::Limits {
    let pixels = (max_megapixels * 1e6).max(1.0) as u64;
    let mut limits = image::Limits::default();
    let side = u32::try_from(pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(pixels.saturating_mul(16));
    limits
}

/// Encodes `image` in the format named by `path`'s extension and writes it atomically (see
/// [`ipt_core::write_atomically_with`]).
///
/// Formats that cannot hold the image's depth or alpha (JPEG) get an 8-bit opaque copy.
pub fn write_image(path: &Path, image: &DynamicImage) -> Result<(), Error> {
    let fail = |reason: String| Error::WriteImage { path: path.to_owned(), reason };
    let format = ImageFormat::from_path(path).map_err(|_| fail("unknown output format: use .png, .jpg, .tif, .bmp or .webp".into()))?;
    let converted;
    let image = match format {
        ImageFormat::Jpeg if image.color().has_color() => {
            converted = DynamicImage::ImageRgb8(image.to_rgb8());
            &converted
        }
        ImageFormat::Jpeg => {
            converted = DynamicImage::ImageLuma8(image.to_luma8());
            &converted
        }
        _ => image,
    };
    // Encoded straight into the file: a 100-MP photo's encoding is never held in memory.
    ipt_core::write_atomically_with(path, |file| image.write_to(file, format).map_err(std::io::Error::other))
        .map_err(|error| fail(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};
    use std::io::Cursor;

    fn round_trip(image: DynamicImage, extension: &str) -> DynamicImage {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join(format!("image.{extension}"));
        write_image(&path, &Planar::from_image(&image).to_image()).unwrap();
        read_image(&path).unwrap()
    }

    fn ramp(scale: u32) -> impl Fn(u32, u32, u32) -> u32 {
        move |x, y, c| ((x * 7 + y * 13 + c * 29) * scale) % (scale * 251)
    }

    #[test]
    fn gray_8_bit_stays_gray_and_exact() {
        let value = ramp(1);
        let image = DynamicImage::ImageLuma8(ImageBuffer::from_fn(9, 5, |x, y| Luma([value(x, y, 0) as u8])));
        assert_eq!(round_trip(image.clone(), "png"), image);
    }

    #[test]
    fn rgba_keeps_its_alpha() {
        let value = ramp(1);
        let image = DynamicImage::ImageRgba8(ImageBuffer::from_fn(6, 4, |x, y| {
            Rgba([value(x, y, 0) as u8, value(x, y, 1) as u8, value(x, y, 2) as u8, (x * 40) as u8])
        }));
        assert_eq!(round_trip(image.clone(), "png"), image);
    }

    #[test]
    fn sixteen_bit_rgb_and_gray_alpha_are_exact() {
        let value = ramp(257);
        let rgb = DynamicImage::ImageRgb16(ImageBuffer::from_fn(5, 7, |x, y| {
            Rgb([value(x, y, 0) as u16, value(x, y, 1) as u16, value(x, y, 2) as u16])
        }));
        assert_eq!(round_trip(rgb.clone(), "png"), rgb);
        let gray =
            DynamicImage::ImageLumaA16(ImageBuffer::from_fn(5, 7, |x, y| LumaA([value(x, y, 0) as u16, 65535 - value(x, y, 1) as u16])));
        assert_eq!(round_trip(gray.clone(), "png"), gray);
    }

    #[test]
    fn jpeg_output_drops_alpha_instead_of_failing() {
        let image = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(8, 8, Rgba([200, 100, 50, 128])));
        let back = round_trip(image, "jpg");
        assert_eq!(back.color(), image::ColorType::Rgb8);
    }

    #[test]
    fn planar_layout_is_channel_major() {
        let image = DynamicImage::ImageRgb8(ImageBuffer::from_fn(2, 1, |x, _| Rgb([x as u8 * 255, 0, 255])));
        let planar = Planar::from_image(&image);
        assert_eq!(planar.rgb, [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        assert!(!planar.grayscale && planar.alpha.is_none());
    }

    /// A minimal EXIF APP1 segment whose only tag is Orientation = `orientation` (little-endian TIFF).
    fn exif_orientation_segment(orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend(8u32.to_le_bytes()); // offset of the first IFD
        tiff.extend(1u16.to_le_bytes()); // one entry
        tiff.extend(0x0112u16.to_le_bytes()); // Orientation
        tiff.extend(3u16.to_le_bytes()); // SHORT
        tiff.extend(1u32.to_le_bytes()); // one value
        tiff.extend(orientation.to_le_bytes());
        tiff.extend([0, 0]); // padding of the 4-byte value field
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        let mut segment = vec![0xFF, 0xE1];
        segment.extend(((2 + 6 + tiff.len()) as u16).to_be_bytes());
        segment.extend(b"Exif\0\0");
        segment.extend(tiff);
        segment
    }

    #[test]
    fn exif_orientation_is_applied() {
        let image = DynamicImage::ImageRgb8(ImageBuffer::from_fn(40, 20, |x, _| Rgb([if x < 20 { 250 } else { 5 }, 128, 128])));
        let mut jpeg = Cursor::new(Vec::new());
        image.write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
        let jpeg = jpeg.into_inner();
        // Orientation 6: the stored image must be turned 90 degrees clockwise to be viewed.
        let mut tagged = jpeg[..2].to_vec();
        tagged.extend(exif_orientation_segment(6));
        tagged.extend(&jpeg[2..]);
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("portrait.jpg");
        std::fs::write(&path, tagged).unwrap();
        let upright = read_image(&path).unwrap().to_rgb8();
        assert_eq!(upright.dimensions(), (20, 40));
        // The bright left half of the stored image is now the top half.
        assert!(upright.get_pixel(10, 5)[0] > 200 && upright.get_pixel(10, 35)[0] < 50);
    }

    #[test]
    fn unreadable_files_are_named_in_the_error() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("broken.png");
        std::fs::write(&path, b"definitely not a png").unwrap();
        let message = read_image(&path).unwrap_err().to_string();
        assert!(message.contains("broken.png"), "{message}");
        let missing = read_image(&folder.path().join("absent.jpg")).unwrap_err().to_string();
        assert!(missing.contains("absent.jpg"), "{missing}");
    }

    /// A PNG of only a signature, a header declaring `width x height`, no pixel data and an end: what a
    /// decompression bomb looks like to a decoder before it reads any pixel.
    fn png_header_only(width: u32, height: u32) -> Vec<u8> {
        fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
            let mut body = kind.to_vec();
            body.extend(data);
            let mut out = (data.len() as u32).to_be_bytes().to_vec();
            out.extend(crc32fast::hash(&body).to_be_bytes());
            out.splice(4..4, body);
            out
        }
        let mut header = width.to_be_bytes().to_vec();
        header.extend(height.to_be_bytes());
        header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive filters, no interlace
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &header));
        png.extend(chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])); // an empty zlib stream
        png.extend(chunk(b"IEND", &[]));
        png
    }

    #[test]
    fn images_above_the_pixel_limit_are_refused_from_their_header() {
        let folder = tempfile::tempdir().unwrap();
        let bomb = folder.path().join("bomb.png");
        std::fs::write(&bomb, png_header_only(20_000, 20_000)).unwrap();
        let message = read_image(&bomb).unwrap_err().to_string();
        assert!(message.contains("bomb.png") && message.contains("20000x20000 = 400 MP is above the 100 MP limit"), "{message}");

        let small = folder.path().join("small.png");
        write_image(&small, &DynamicImage::ImageRgb8(ImageBuffer::new(30, 20))).unwrap();
        assert_eq!(read_image_within(&small, 0.0006).unwrap().width(), 30, "600 pixels are within 0.0006 MP");
        let message = read_image_within(&small, 0.0005).unwrap_err().to_string();
        assert!(message.contains("small.png") && message.contains("30x20") && message.contains("0.0005 MP limit"), "{message}");
    }

    #[test]
    fn uploads_decode_as_files_do_under_the_same_limits() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("ramp.png");
        let value = ramp(1);
        write_image(&file, &DynamicImage::ImageRgb8(ImageBuffer::from_fn(30, 20, |x, y| Rgb([value(x, y, 0) as u8, 7, 9])))).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let upload = Path::new("upload.png");
        assert_eq!(decode_image_within(&bytes, upload, 1.0).unwrap(), read_image(&file).unwrap());
        let message = decode_image_within(&bytes, upload, 0.0005).unwrap_err().to_string();
        assert!(message.contains("upload.png") && message.contains("30x20"), "{message}");
        let bomb = decode_image_within(&png_header_only(20_000, 20_000), upload, 100.0).unwrap_err();
        assert!(matches!(bomb, Error::TooLarge { width: 20_000, .. }), "{bomb}");
        let text = decode_image_within(b"plain text", upload, 1.0).unwrap_err().to_string();
        assert!(text.contains("upload.png: cannot read image: unrecognised image format"), "{text}");
    }

    #[test]
    fn unknown_output_extensions_are_refused_before_writing() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("out.xyz");
        let image = DynamicImage::ImageRgb8(ImageBuffer::new(2, 2));
        assert!(write_image(&path, &image).unwrap_err().to_string().contains("out.xyz"));
        assert!(!path.exists());
    }
}
