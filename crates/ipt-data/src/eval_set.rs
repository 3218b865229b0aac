//! Fixed evaluation sets: degraded copies of held-out photos, written once per task with a
//! manifest (seed, parameters, SHA-256 of every file), so every method is scored on identical
//! inputs. A set whose manifest already matches its spec is reused, not rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipt_core::Task;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result, io_error};
use crate::random::{label, rng_for, task_label};
use crate::spec::{anchor_root, check_tasks, list_images, read_spec, resolve_data_root};
use crate::{Degradation, DegradationParams, Rgb};

/// Version of `manifest.json` and of the synthesis behind it: raised whenever the same
/// parameters would make different images (3: blur kernels centred on their centre of mass),
/// so sets written before are rebuilt, not reused.
pub const MANIFEST_VERSION: u32 = 3;

/// Which photos to degrade, how, and with which seed (`datasets/eval-*.toml`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSetSpec {
    /// Short name; sets are written to `<out>/<name>/<task>/`.
    pub name: String,
    /// Data root (absolute, or relative to the spec file); `None` = environment or default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Folders of clean photos, relative to the root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<PathBuf>,
    /// Instead of `sources`: the validation split of this dataset spec (relative to this file),
    /// for sets that judge training choices on held-out training photos, never on eval/.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_of: Option<PathBuf>,
    /// Base seed.
    pub seed: u64,
    /// The degradation per task.
    pub tasks: BTreeMap<Task, Degradation>,
}

/// What was written for one task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EvalSetManifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The spec's name.
    pub set: String,
    /// The task.
    pub task: Task,
    /// Base seed.
    pub seed: u64,
    /// The degradation ranges the parameters were drawn from.
    pub degradation: Degradation,
    /// One entry per image, sorted by name.
    pub images: Vec<EvalSetEntry>,
}

/// One degraded image of a fixed evaluation set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EvalSetEntry {
    /// File name under `input/` and `target/`.
    pub name: String,
    /// The clean source photo, relative to the data root (so committed sets stay portable).
    pub source: PathBuf,
    /// SHA-256 of the source file.
    pub source_sha256: String,
    /// The drawn degradation.
    pub params: DegradationParams,
    /// SHA-256 of `input/<name>`.
    pub input_sha256: String,
    /// SHA-256 of `target/<name>`.
    pub target_sha256: String,
}

impl EvalSetSpec {
    /// Reads and checks a spec; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let mut spec: Self = read_spec(path)?;
        let invalid = |message: String| DataError::Spec { path: path.into(), message };
        check_tasks(&spec.tasks).map_err(|error| invalid(error.to_string()))?;
        if spec.sources.is_empty() == spec.validation_of.is_none() {
            return Err(invalid("give either `sources` (photo folders) or `validation_of` (a dataset spec), not both or neither".into()));
        }
        anchor_root(&mut spec.root, path);
        anchor_root(&mut spec.validation_of, path);
        Ok(spec)
    }

    /// One family of a dataset spec's task (`family` counts its `[[tasks.<task>.families]]` from
    /// 0; a task that is not a mixture is its own family 0) on that spec's validation photos,
    /// whole, degraded with `seed`: scores per family what training holds out, with the ranges
    /// it trains on and no copy of them to drift; photos are named relative to the dataset's data
    /// root. Errors name the dataset file.
    pub fn family_of(dataset: &Path, task: Task, family: usize, seed: u64) -> Result<Self> {
        let spec = crate::DatasetSpec::load(dataset)?;
        let families = spec.tasks.get(&task).map(Degradation::families).unwrap_or_default();
        let degradation = families.get(family).ok_or_else(|| DataError::Spec {
            path: dataset.into(),
            message: format!("task '{task}' has {} families (counted from 0), so family {family} does not exist", families.len()),
        })?;
        Ok(Self {
            name: format!("{}-{task}-family{family}", spec.name),
            root: spec.root.clone(),
            sources: Vec::new(),
            validation_of: Some(dataset.into()),
            seed,
            tasks: BTreeMap::from([(task, (*degradation).clone())]),
        })
    }

    /// The clean source photos, sorted by folder then name (or the dataset spec's validation
    /// photos, sorted).
    pub fn photos(&self) -> Result<Vec<PathBuf>> {
        if let Some(dataset) = &self.validation_of {
            return Ok(crate::DatasetSpec::load(dataset)?.split()?.1);
        }
        let root = self.data_root()?;
        let mut photos = Vec::new();
        for folder in &self.sources {
            photos.extend(list_images(&root.join(folder))?);
        }
        Ok(photos)
    }

    fn data_root(&self) -> Result<PathBuf> {
        resolve_data_root(self.root.as_deref())
    }

    /// `photo` relative to the data root, as manifests record it.
    fn source_name(&self, photo: &Path) -> Result<PathBuf> {
        Ok(photo.strip_prefix(self.data_root()?).unwrap_or(photo).to_path_buf())
    }

    /// Writes (or reuses) every task's set under `out/<name>/<task>/`; returns the manifests.
    pub fn build(&self, out: &Path) -> Result<Vec<(PathBuf, EvalSetManifest)>> {
        let photos = self.photos()?;
        let mut built = Vec::new();
        for (task, degradation) in &self.tasks {
            let dir = out.join(&self.name).join(task.name());
            let manifest = match read_manifest(&dir) {
                Some(existing) if self.still_valid(&existing, *task, degradation, &photos, &dir)? => existing,
                _ => self.write_task(&dir, *task, degradation, &photos)?,
            };
            built.push((dir, manifest));
        }
        Ok(built)
    }

    fn still_valid(
        &self,
        manifest: &EvalSetManifest,
        task: Task,
        degradation: &Degradation,
        photos: &[PathBuf],
        dir: &Path,
    ) -> Result<bool> {
        if manifest.version != MANIFEST_VERSION
            || manifest.seed != self.seed
            || manifest.degradation != *degradation
            || manifest.task != task
            || manifest.images.len() != photos.len()
        {
            return Ok(false);
        }
        for (entry, photo) in manifest.images.iter().zip(photos) {
            let current = |path: &Path| -> Result<Option<String>> { if path.is_file() { sha256_file(path).map(Some) } else { Ok(None) } };
            if entry.source != self.source_name(photo)?
                || current(photo)?.as_deref() != Some(entry.source_sha256.as_str())
                || current(&dir.join("input").join(&entry.name))?.as_deref() != Some(entry.input_sha256.as_str())
                || current(&dir.join("target").join(&entry.name))?.as_deref() != Some(entry.target_sha256.as_str())
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn write_task(&self, dir: &Path, task: Task, degradation: &Degradation, photos: &[PathBuf]) -> Result<EvalSetManifest> {
        let mut images = Vec::with_capacity(photos.len());
        for photo in photos {
            let stem = photo.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
            let name = format!("{stem}.png");
            let params = degradation.sample(&mut rng_for(self.seed, &[task_label(task), label(&name)]));
            let clean = Rgb::read(photo)?;
            let (input_path, target_path) = (dir.join("input").join(&name), dir.join("target").join(&name));
            params.apply(&clean).write_png(&input_path)?;
            clean.write_png(&target_path)?;
            images.push(EvalSetEntry {
                name,
                source: self.source_name(photo)?,
                source_sha256: sha256_file(photo)?,
                params,
                input_sha256: sha256_file(&input_path)?,
                target_sha256: sha256_file(&target_path)?,
            });
        }
        let manifest = EvalSetManifest {
            version: MANIFEST_VERSION,
            set: self.name.clone(),
            task,
            seed: self.seed,
            degradation: degradation.clone(),
            images,
        };
        let text = serde_json::to_string_pretty(&manifest).expect("manifests serialise");
        let path = dir.join("manifest.json");
        ipt_core::write_atomically(&path, text.as_bytes()).map_err(io_error(&path))?;
        Ok(manifest)
    }
}

fn read_manifest(dir: &Path) -> Option<EvalSetManifest> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_error(path))?;
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::{NameKey, pair_folders};

    #[test]
    fn the_shipped_spec_loads_and_reads_only_eval_photos() {
        if crate::spec::skip_without_photos("the_shipped_spec_loads_and_reads_only_eval_photos") {
            return;
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/eval-synthetic.toml");
        let spec = EvalSetSpec::load(&path).unwrap();
        assert_eq!(spec.tasks.len(), 5);
        assert_eq!(spec.photos().unwrap().len(), 24);
    }

    #[test]
    fn sets_are_written_once_with_a_manifest_and_rebuilt_when_a_file_changes() {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join("clean")).unwrap();
        for (index, name) in ["a.png", "b.jpg"].iter().enumerate() {
            let image = image::RgbImage::from_fn(24, 20, |x, y| image::Rgb([(x * 10) as u8, (y * 12) as u8, 60 * index as u8]));
            image.save(data.path().join("clean").join(name)).unwrap();
        }
        let spec = EvalSetSpec {
            name: "synthetic".into(),
            root: Some(data.path().into()),
            sources: vec!["clean".into()],
            validation_of: None,
            seed: 5,
            tasks: [Task::Deblur, Task::Dehaze].into_iter().map(|task| (task, Degradation::default_for(task))).collect(),
        };
        let out = tempfile::tempdir().unwrap();
        let first = spec.build(out.path()).unwrap();
        assert_eq!(first.len(), 2);
        let (dir, manifest) = &first[0];
        assert_eq!(manifest.images.iter().map(|entry| entry.name.as_str()).collect::<Vec<_>>(), ["a.png", "b.png"]);
        assert_eq!(pair_folders(&dir.join("input"), &dir.join("target"), NameKey::Stem).unwrap().len(), 2);
        let written = std::fs::metadata(dir.join("input/a.png")).unwrap().modified().unwrap();

        let again = spec.build(out.path()).unwrap();
        assert_eq!(again, first, "same spec, same set");
        assert_eq!(std::fs::metadata(dir.join("input/a.png")).unwrap().modified().unwrap(), written, "reused, not rewritten");

        std::fs::write(dir.join("input/a.png"), b"tampered").unwrap();
        let rebuilt = spec.build(out.path()).unwrap();
        assert_eq!(rebuilt, first, "a damaged file is rewritten identically");
        assert_eq!(sha256_file(&dir.join("input/a.png")).unwrap(), manifest.images[0].input_sha256);
    }

    /// A temporary folder holding `photos/0.png` .. `photos/<count - 1>.png`, distinct gradients.
    fn folder_of_photos(count: u8, width: u32, height: u32) -> tempfile::TempDir {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join("photos")).unwrap();
        for index in 0..count {
            let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8 * 11, y as u8 * 13, index * 40]));
            image.save(data.path().join("photos").join(format!("{index}.png"))).unwrap();
        }
        data
    }

    /// A spec over a dataset's validation split degrades exactly the photos training holds out;
    /// a spec naming both sources and a dataset, or neither, is refused with its file's name.
    #[test]
    fn a_set_can_be_cut_from_a_datasets_validation_split() {
        let data = folder_of_photos(6, 16, 16);
        let root = data.path().display();
        std::fs::write(
            data.path().join("dataset.toml"),
            format!("name = \"d\"\nroot = \"{root}\"\nclean = [\"photos\"]\n[validation]\nimages = 2\nseed = 1\ncrop = 16\n[tasks.deblur]\nkind = \"defocus_blur\"\nradius = {{ min = 1.0, max = 2.0 }}\n"),
        )
        .unwrap();
        let tasks = "[tasks.deblur]\nkind = \"defocus_blur\"\nradius = { min = 1.0, max = 2.0 }\n";
        let write = |name: &str, head: &str| {
            let path = data.path().join(name);
            std::fs::write(&path, format!("name = \"v\"\nseed = 3\n{head}\n{tasks}")).unwrap();
            path
        };
        let spec = EvalSetSpec::load(&write("held-out.toml", "validation_of = \"dataset.toml\"")).unwrap();
        let (_, validation) = crate::DatasetSpec::load(&data.path().join("dataset.toml")).unwrap().split().unwrap();
        assert_eq!(validation.len(), 2);
        assert_eq!(spec.photos().unwrap(), validation);
        for (name, head) in [("both.toml", "validation_of = \"dataset.toml\"\nsources = [\"photos\"]"), ("neither.toml", "")] {
            let error = EvalSetSpec::load(&write(name, head)).unwrap_err().to_string();
            assert!(error.contains(name) && error.contains("validation_of"), "{error}");
        }
    }

    /// A family taken from a dataset spec makes the very set a spec written out by hand with
    /// that family's ranges makes (same seed, same photos, byte for byte); a family or task the
    /// dataset lacks is refused naming the dataset file.
    #[test]
    fn a_family_of_a_dataset_equals_its_ranges_written_out() {
        let data = folder_of_photos(5, 20, 18);
        let (defocus, gaussian) = (
            "kind = \"defocus_blur\"\nradius = { min = 1.0, max = 2.0 }\n",
            "kind = \"gaussian_blur\"\nsigma = { min = 0.8, max = 2.0 }\nanisotropy = { min = 1.0, max = 2.0 }\nangle = { min = 0.0, max = 180.0 }\n",
        );
        let dataset = data.path().join("dataset.toml");
        let head = format!(
            "name = \"d\"\nroot = \"{}\"\nclean = [\"photos\"]\n[validation]\nimages = 3\nseed = 1\ncrop = 16\n",
            data.path().display()
        );
        let mixture =
            format!("[tasks.deblur]\nkind = \"mixture\"\n[[tasks.deblur.families]]\n{defocus}[[tasks.deblur.families]]\n{gaussian}");
        std::fs::write(&dataset, format!("{head}{mixture}")).unwrap();
        let by_hand = data.path().join("by-hand.toml");
        std::fs::write(
            &by_hand,
            format!(
                "name = \"h\"\nroot = \"{}\"\nseed = 7\nvalidation_of = \"dataset.toml\"\n[tasks.deblur]\n{gaussian}",
                data.path().display()
            ),
        )
        .unwrap();

        let family = EvalSetSpec::family_of(&dataset, Task::Deblur, 1, 7).unwrap();
        assert_eq!(family.name, "d-deblur-family1");
        let out = tempfile::tempdir().unwrap();
        let (_, from_family) = family.build(out.path()).unwrap().remove(0);
        let (_, written_out) = EvalSetSpec::load(&by_hand).unwrap().build(out.path()).unwrap().remove(0);
        let (_, validation) = crate::DatasetSpec::load(&dataset).unwrap().split().unwrap();
        assert!(!validation.is_empty());
        assert_eq!(from_family.images.len(), validation.len());
        assert_eq!(from_family.images, written_out.images);
        assert_eq!(from_family.degradation.kind(), "gaussian_blur");

        for (task, index) in [(Task::Deblur, 2), (Task::Derain, 0)] {
            let error = EvalSetSpec::family_of(&dataset, task, index, 7).unwrap_err().to_string();
            assert!(error.contains("dataset.toml") && error.contains(&format!("family {index}")), "{error}");
        }
    }
}
