//! PNG grids of crops (input / each checkpoint's output / target, one row per image), for
//! looking at what the numbers mean.

use ipt_data::rgb::Rgb;

/// Side of the square crops in a grid.
pub const CROP: usize = 128;
/// White gap between cells, in pixels.
const GAP: usize = 4;

/// The centred `side x side` window of `image` (smaller when the image is).
pub fn center_crop(image: &Rgb, side: usize) -> Rgb {
    let (width, height) = (side.min(image.width), side.min(image.height));
    image.crop_reflect(((image.width - width) / 2) as isize, ((image.height - height) / 2) as isize, width, height)
}

/// Lays `rows` of images out on a white canvas, each cell `CROP x CROP` with the image at its
/// top-left, separated by white gaps.
pub fn compose(rows: &[Vec<Rgb>]) -> Rgb {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let side = |count: usize| count * CROP + count.saturating_sub(1) * GAP;
    let mut canvas = Rgb::filled(side(columns).max(1), side(rows.len()).max(1), 1.0);
    for (row, images) in rows.iter().enumerate() {
        for (column, image) in images.iter().enumerate() {
            paste(&mut canvas, image, column * (CROP + GAP), row * (CROP + GAP));
        }
    }
    canvas
}

fn paste(canvas: &mut Rgb, image: &Rgb, left: usize, top: usize) {
    let (width, height) = (image.width.min(CROP), image.height.min(CROP));
    let canvas_width = canvas.width;
    for channel in 0..3 {
        let source = image.channel(channel);
        let target = canvas.channel_mut(channel);
        for y in 0..height {
            let row = (top + y) * canvas_width + left;
            target[row..row + width].copy_from_slice(&source[y * image.width..y * image.width + width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_are_centred_and_bounded() {
        let mut image = Rgb::zeros(300, 200);
        image.channel_mut(0)[100 * 300 + 150] = 1.0;
        let crop = center_crop(&image, CROP);
        assert_eq!((crop.width, crop.height), (CROP, CROP));
        assert_eq!(crop.channel(0)[64 * CROP + 64], 1.0, "the centre pixel lands in the crop's centre");
        let small = center_crop(&Rgb::zeros(50, 40), CROP);
        assert_eq!((small.width, small.height), (50, 40));
    }

    #[test]
    fn compose_places_cells_with_white_gaps() {
        let black = Rgb::zeros(CROP, CROP);
        let grid = compose(&[vec![black.clone(), black.clone()], vec![black]]);
        assert_eq!((grid.width, grid.height), (2 * CROP + GAP, 2 * CROP + GAP));
        let at = |x: usize, y: usize| grid.channel(1)[y * grid.width + x];
        assert_eq!(at(0, 0), 0.0);
        assert_eq!(at(CROP + 1, 0), 1.0, "gap");
        assert_eq!(at(CROP + GAP, CROP - 1), 0.0, "second cell");
        assert_eq!(at(CROP + GAP, CROP + GAP), 1.0, "missing cell stays white");
    }
}
