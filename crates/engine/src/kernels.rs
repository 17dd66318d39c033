//! The bridge to ms-quant's block kernels: which activation type a weight type pairs with,
//! how activations are quantized, and the dot kernel of each weight type.
//!
//! Q8_0 activations are quantized the way llama.cpp's x86 code does it, not like its reference
//! function (`ms_quant::activation::quantize_row_q8_0_x86` says why).

use ms_gguf::GgmlType;

/// Weight types with a dot kernel (and a dequantizer for embedding lookups).
pub(crate) fn supported(ty: GgmlType) -> bool {
    ms_quant::dot::kernel(ty).is_ok() && ms_quant::can_dequantize(ty)
}

/// The weight types [`supported`] accepts, for error messages.
pub(crate) fn supported_types() -> Vec<GgmlType> {
    GgmlType::all().filter(|&t| supported(t)).collect()
}

/// The activation type a supported weight type is multiplied with.
pub(crate) fn act_type(ty: GgmlType) -> GgmlType {
    match ms_quant::dot_type(ty) {
        Ok(a) => a,
        _ => unreachable!("{ty} was checked to be supported when the model was loaded"),
    }
}

/// Bytes of one row of `n` activations of type `ty`.
pub(crate) fn act_row_bytes(ty: GgmlType, n: usize) -> usize {
    ty.row_bytes(n as u64).unwrap_or(0) as usize
}

/// Quantizes `x` to the activation type `ty` into `out` (`act_row_bytes` long).
pub(crate) fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) {
    let quantized = if ty == GgmlType::Q8_0 {
        ms_quant::activation::quantize_row_q8_0_x86(x, out)
    } else {
        ms_quant::activation::quantize_activation_row(ty, x, out)
    };
    if let Err(e) = quantized {
        unreachable!("activation rows are sized by act_row_bytes: {e}");
    }
}

/// Dequantizes one row of `out.len()` values of a supported type.
pub(crate) fn dequantize_row(ty: GgmlType, b: &[u8], out: &mut [f32]) {
    if let Err(e) = ms_quant::dequantize_row(ty, b, out) {
        unreachable!("rows are sliced by their type's row size: {e}");
    }
}
