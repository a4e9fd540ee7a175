use crate::DetectorBuilder;
pub fn builder() -> Result<DetectorBuilder, String> {
    Err("tmp".into())
}
