//! Dataset specs (`datasets/*.toml`): which clean folders, which tasks with which degradation
//! ranges, and the validation split cut from the training folders. Paths are relative to a
//! data root taken from the spec, else `$INSTRUCT_IPT_DATA`, else `../shared/data` found beside
//! the current folder or one of its ancestors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipt_core::Task;
use serde::{Deserialize, Serialize};

use crate::Degradation;
use crate::error::{DataError, Result, io_error};
use crate::random::{label, rng_for};

/// The environment variable that points at the data root.
pub const DATA_ROOT_VARIABLE: &str = "INSTRUCT_IPT_DATA";

/// Image file extensions the loaders pick up.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// A training dataset: clean photos, degradations per task, and a validation split.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Short name, used in run metadata.
    pub name: String,
    /// Data root (absolute, or relative to the spec file); `None` = environment or default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Folders of clean training photos, relative to the root.
    pub clean: Vec<PathBuf>,
    /// Photos held out of training for validation.
    pub validation: ValidationSplit,
    /// The degradation that makes each task's inputs.
    pub tasks: BTreeMap<Task, Degradation>,
}

/// How the validation photos are chosen from the training folders (never from eval/).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidationSplit {
    /// Number of photos held out.
    pub images: usize,
    /// Seed of the choice and of the validation degradations.
    pub seed: u64,
    /// Side of the centre crop each validation photo is scored on.
    pub crop: usize,
    /// Degradations of the validation photos, per task, where they differ from the training
    /// ones: a family held out of training here measures whether a change generalises.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<Task, Degradation>,
}

impl DatasetSpec {
    /// Reads and checks a spec; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<Self> {
        let mut spec: Self = read_spec(path)?;
        spec.check().map_err(|error| DataError::Spec { path: path.into(), message: error.to_string() })?;
        anchor_root(&mut spec.root, path);
        Ok(spec)
    }

    /// Checks every degradation and that the spec names at least one folder and task.
    pub fn check(&self) -> Result<()> {
        if self.clean.is_empty() {
            return Err(DataError::Invalid { what: format!("dataset '{}'", self.name), message: "`clean` lists no folder".into() });
        }
        check_tasks(&self.tasks)?;
        if let Some(task) = self.validation.tasks.keys().find(|task| !self.tasks.contains_key(task)) {
            let message = format!("task {task} is validated but not trained");
            return Err(DataError::Invalid { what: "validation.tasks".into(), message });
        }
        if self.validation.tasks.is_empty() { Ok(()) } else { check_tasks(&self.validation.tasks) }
    }

    /// The degradation each task is validated on: `validation.tasks` where given, else the
    /// training one.
    pub fn validation_tasks(&self) -> BTreeMap<Task, Degradation> {
        let mut tasks = self.tasks.clone();
        tasks.extend(self.validation.tasks.clone());
        tasks
    }

    /// The data root this spec resolves to.
    pub fn data_root(&self) -> Result<PathBuf> {
        resolve_data_root(self.root.as_deref())
    }

    /// The tasks, in canonical order.
    pub fn task_list(&self) -> Vec<Task> {
        self.tasks.keys().copied().collect()
    }

    /// This spec on other clean photos: `folders` replace `clean` (absolute folders need no data
    /// root), with the same tasks and validation rules.
    pub fn with_clean_folders(mut self, folders: &[PathBuf]) -> Self {
        self.clean = folders.to_vec();
        self
    }

    /// Every clean photo, sorted, split into (training, validation). The validation split holds
    /// out `validation.images` photos, but never more than half of them, so a small folder of
    /// one's own still trains; an error if fewer than two photos are found.
    pub fn split(&self) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let all_absolute = self.clean.iter().all(|folder| folder.is_absolute());
        let root = if all_absolute { PathBuf::new() } else { self.data_root()? };
        let mut photos = Vec::new();
        for folder in &self.clean {
            photos.extend(list_images(&root.join(folder))?);
        }
        if photos.len() < 2 {
            let folders: Vec<String> = self.clean.iter().map(|folder| root.join(folder).display().to_string()).collect();
            let message = format!("{} holds {} photo(s); training and validation need at least 2", folders.join(", "), photos.len());
            return Err(DataError::Invalid { what: format!("dataset '{}'", self.name), message });
        }
        let validation = choose_validation(&photos, &self.validation);
        let training = photos.iter().filter(|photo| !validation.contains(photo)).cloned().collect();
        Ok((training, validation))
    }
}

/// Parses a TOML spec; errors name the file and the key.
pub(crate) fn read_spec<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    toml::from_str(&text).map_err(|error| DataError::Spec { path: path.into(), message: error.to_string() })
}

/// Makes a relative `root` relative to the spec file's folder.
pub(crate) fn anchor_root(root: &mut Option<PathBuf>, spec_path: &Path) {
    if let Some(root) = root.as_mut().filter(|root| root.is_relative()) {
        *root = spec_path.parent().unwrap_or(Path::new(".")).join(&*root);
    }
}

/// Checks that a task map is non-empty, that each degradation belongs to its task, and its ranges.
pub fn check_tasks(tasks: &BTreeMap<Task, Degradation>) -> Result<()> {
    if tasks.is_empty() {
        return Err(DataError::Invalid { what: "tasks".into(), message: "no task is listed".into() });
    }
    for (task, degradation) in tasks {
        if degradation.task() != *task {
            let message = format!("a {} degradation belongs to task {}", degradation.kind(), degradation.task());
            return Err(DataError::Invalid { what: format!("tasks.{task}"), message });
        }
        degradation.check()?;
    }
    Ok(())
}

/// Picks `split.images` photos by a seeded ranking of their file names (stable when photos are
/// added elsewhere in the folder).
fn choose_validation(photos: &[PathBuf], split: &ValidationSplit) -> Vec<PathBuf> {
    let mut ranked: Vec<(u64, &PathBuf)> =
        photos.iter().map(|photo| (rand::RngExt::random::<u64>(&mut rng_for(split.seed, &[label(&file_name(photo))])), photo)).collect();
    ranked.sort();
    let mut chosen: Vec<PathBuf> = ranked.into_iter().take(split.images.min(photos.len() / 2)).map(|(_, photo)| photo.clone()).collect();
    chosen.sort();
    chosen
}

/// The data root: `explicit`, else `$INSTRUCT_IPT_DATA`, else `../shared/data` beside the
/// current folder or one of its ancestors, else [`user_data_home`] when it exists.
pub fn resolve_data_root(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(root) = explicit {
        return Ok(root.to_path_buf());
    }
    if let Some(root) = std::env::var_os(DATA_ROOT_VARIABLE).filter(|root| !root.is_empty()) {
        return Ok(PathBuf::from(root));
    }
    let here = std::env::current_dir().map_err(io_error("."))?;
    let beside = here.ancestors().map(|dir| dir.join("../shared/data")).find(|candidate| candidate.is_dir());
    beside.or_else(|| user_data_home().filter(|home| home.is_dir())).ok_or_else(|| DataError::Invalid {
        what: "data root".into(),
        message: format!(
            "no photos found: run `cargo xtask fetch-data` (public sets into {}), or set `root` in the spec or ${DATA_ROOT_VARIABLE} to your data folder (no ../shared/data beside {} or its parents)",
            user_data_home().map_or_else(|| "the user's data folder".into(), |home| home.display().to_string()),
            here.display()
        ),
    })
}

/// Where `cargo xtask fetch-data` puts the public photo sets unless told otherwise:
/// `instruct-ipt/data` in the user's data folder (`~/.local/share` on Linux).
pub fn user_data_home() -> Option<PathBuf> {
    dirs::data_dir().map(|folder| folder.join("instruct-ipt").join("data"))
}

/// The image files directly inside `dir`, sorted by name; an error if there are none.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut images: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| is_image(path))
        .collect();
    if images.is_empty() {
        return Err(DataError::NoImages { dir: dir.into() });
    }
    images.sort();
    Ok(images)
}

/// The file name of `path` as text (empty if it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether `path` is a file with an image extension.
pub fn is_image(path: &Path) -> bool {
    path.is_file() && has_image_extension(path)
}

/// Whether `path` ends in an image extension the loaders read (case-insensitive).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|ext| ext.to_str()).is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// For tests on the real photo sets: true (after printing why) when no data root resolves, so
/// the test is skipped on a machine without `../shared/data` or `$INSTRUCT_IPT_DATA`.
#[cfg(test)]
pub(crate) fn skip_without_photos(test: &str) -> bool {
    let missing = resolve_data_root(None).is_err();
    if missing {
        // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
        let message = format!("SKIPPED {test}: no data root (set ${DATA_ROOT_VARIABLE} or run `cargo xtask fetch-data`)\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipt_core::fuzz::{FuzzRandom, fuzz_files, mutate_toml};

    #[test]
    fn fuzzed_dataset_specs_load_checked_or_fail_naming_the_file() {
        let valid = include_str!("../../../datasets/all-in-one.toml");
        let folder = tempfile::tempdir().unwrap();
        fuzz_files(
            folder.path(),
            "toml",
            300,
            &mut FuzzRandom::new(17),
            |random| mutate_toml(valid, random),
            |path| {
                let spec = DatasetSpec::load(path).map_err(|error| error.to_string())?;
                spec.check().expect("a loaded spec is checked");
                Ok(())
            },
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_shipped_specs_load_and_split_without_overlap() {
        if skip_without_photos("the_shipped_specs_load_and_split_without_overlap") {
            return;
        }
        let datasets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
        let spec = DatasetSpec::load(&datasets.join("all-in-one.toml")).unwrap();
        assert_eq!(spec.task_list(), Task::ALL.to_vec());
        let (training, validation) = spec.split().unwrap();
        assert_eq!(validation.len(), spec.validation.images);
        assert!(training.len() > 300, "{} training photos", training.len());
        assert!(validation.iter().all(|photo| !training.contains(photo)));
        assert!(training.iter().chain(&validation).all(|photo| !photo.to_string_lossy().contains("eval")));
        assert_eq!(spec.split().unwrap().1, validation, "the split is deterministic");
        let eval = crate::EvalSetSpec::load(&datasets.join("eval-synthetic.toml")).unwrap();
        for (task, degradation) in &spec.tasks {
            let benchmark_like = degradation.families()[0];
            assert_eq!(*benchmark_like, Degradation::default_for(*task), "the first family is the code's default for {task}");
            if let Some(evaluated) = eval.tasks.get(task) {
                assert_eq!(evaluated, benchmark_like, "eval-synthetic.toml scores the first family of {task}");
            }
        }
        let generalisation = DatasetSpec::load(&datasets.join("generalisation.toml")).unwrap();
        for (task, held_out) in &generalisation.validation.tasks {
            let trained = generalisation.tasks[task].families();
            assert!(!trained.contains(&held_out), "{task}: the validation family is held out of training");
            assert!(spec.tasks[task].families().contains(&held_out), "{task}: the held-out family is one of all-in-one.toml's");
        }
    }

    #[test]
    fn validation_degradations_override_the_training_ones_for_their_tasks_only() {
        let dir = tempfile::tempdir().unwrap();
        let base = "name = \"x\"\nclean = [\"a\"]\n[validation]\nimages = 1\nseed = 0\ncrop = 64\n";
        let tasks = "[tasks.denoise]\nkind = \"gaussian_noise\"\nsigma = 25\n[tasks.deblur]\nkind = \"defocus_blur\"\nradius = 2\n";
        let held_out = "[validation.tasks.denoise]\nkind = \"jpeg_noise\"\nsigma = 5\nquality = 40\n";
        let spec = DatasetSpec::load(&write(dir.path(), "held.toml", &format!("{base}{held_out}{tasks}"))).unwrap();
        let validated = spec.validation_tasks();
        assert_eq!(validated[&Task::Denoise].kind(), "jpeg_noise");
        assert_eq!(validated[&Task::Deblur], spec.tasks[&Task::Deblur]);
        let untrained = "[validation.tasks.derain]\nkind = \"rain\"\ndensity = 1\nlength = 9\nwidth = 1\nangle = 0\nintensity = 0.5\nblend = \"screen\"\n";
        let message =
            DatasetSpec::load(&write(dir.path(), "untrained.toml", &format!("{base}{untrained}{tasks}"))).unwrap_err().to_string();
        assert!(message.contains("untrained.toml") && message.contains("derain is validated but not trained"), "{message}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let base = "name = \"x\"\nclean = [\"a\"]\n[validation]\nimages = 1\nseed = 0\ncrop = 64\n";
        let unknown =
            write(dir.path(), "unknown.toml", &format!("{base}[tasks.denoise]\nkind = \"gaussian_noise\"\nsigma = 25\nsigmaa = 3\n"));
        let message = DatasetSpec::load(&unknown).unwrap_err().to_string();
        assert!(message.contains("unknown.toml") && message.contains("sigmaa"), "{message}");
        let mismatched = write(dir.path(), "mismatch.toml", &format!("{base}[tasks.derain]\nkind = \"gaussian_noise\"\nsigma = 25\n"));
        let message = DatasetSpec::load(&mismatched).unwrap_err().to_string();
        assert!(message.contains("mismatch.toml") && message.contains("tasks.derain"), "{message}");
        let wrong_type = write(dir.path(), "type.toml", &base.replace("images = 1", "images = \"many\""));
        let message = DatasetSpec::load(&wrong_type).unwrap_err().to_string();
        assert!(message.contains("type.toml") && message.contains("images"), "{message}");
    }

    #[test]
    fn a_folder_of_ones_own_photos_replaces_the_clean_folders_without_a_data_root() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("my photos");
        std::fs::create_dir(&photos).unwrap();
        let spec_text = "name = \"x\"\nroot = \"/nonexistent/root\"\nclean = [\"train\"]\n[validation]\nimages = 24\nseed = 0\ncrop = 64\n[tasks.denoise]\nkind = \"gaussian_noise\"\nsigma = 25\n";
        let spec = DatasetSpec::load(&write(dir.path(), "spec.toml", spec_text)).unwrap();
        let mine = spec.with_clean_folders(std::slice::from_ref(&photos));
        image::RgbImage::new(8, 8).save(photos.join("only.png")).unwrap();
        let message = mine.split().unwrap_err().to_string();
        assert!(message.contains("my photos") && message.contains("1 photo(s)"), "{message}");
        for index in 0..5 {
            image::RgbImage::new(8, 8).save(photos.join(format!("{index}.png"))).unwrap();
        }
        let (training, validation) = mine.split().unwrap();
        assert_eq!((training.len(), validation.len()), (3, 3), "24 held out is capped at half of 6 photos");
        assert!(training.iter().chain(&validation).all(|photo| photo.starts_with(&photos)));
    }

    #[test]
    fn an_empty_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let message = list_images(dir.path()).unwrap_err().to_string();
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
    }
}
