use candle_core::Device;

use crate::DeviceChoice;

/// Opens the device `choice` names, falling back to the CPU with one WARN
/// line when the build has no CUDA support or the GPU does not answer.
pub(crate) fn open(choice: DeviceChoice) -> Device {
    match choice {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Cuda(ordinal) => open_cuda(ordinal),
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Device {
    match Device::new_cuda(ordinal) {
        Ok(device) => device,
        Err(error) => {
            tracing::warn!(ordinal, %error, "no CUDA device answered, running the encoder on the CPU");
            Device::Cpu
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Device {
    tracing::warn!(
        ordinal,
        "no CUDA device: this build lacks the cuda feature, running the encoder on the CPU"
    );
    Device::Cpu
}

/// `cpu` or `cuda:N`.
pub(crate) fn name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_owned(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
