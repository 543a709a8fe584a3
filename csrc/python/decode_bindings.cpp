// pyvideo._C.decode: the FFmpeg video/audio/image decoders and the video encoder (csrc/decode).
// Every native call runs without the GIL; frames come back as zero-copy DLPack capsules.
#include <pybind11/stl.h>

#include "csrc/python/module.h"
#include "csrc/python/tensor.h"

#if PYVIDEO_HAVE_FFMPEG
#include "csrc/decode/audio_decoder.h"
#include "csrc/decode/errors.h"
#include "csrc/decode/image_decoder.h"
#include "csrc/decode/video_decoder.h"
#include "csrc/decode/video_encoder.h"

namespace py = pybind11;
namespace dec = pyvideo::decode;
using pyvideo::python::DType;

namespace {

// A path (str / os.PathLike) or the bytes of a file.
dec::MediaSource media_source(py::handle source, const std::string& name) {
  if (py::isinstance<py::bytes>(source) || py::isinstance<py::bytearray>(source) ||
      py::isinstance<py::memoryview>(source)) {
    auto bytes = py::module_::import("builtins").attr("bytes")(source).cast<std::string>();
    return dec::MediaSource::from_bytes(std::move(bytes), name.empty() ? "<bytes>" : name);
  }
  if (py::isinstance<py::str>(source) || py::hasattr(source, "__fspath__"))
    return dec::MediaSource::from_path(py::str(py::module_::import("os").attr("fspath")(source)));
  throw py::type_error("video source must be a path (str or os.PathLike) or bytes, not " +
                       std::string(py::str(py::type::handle_of(source).attr("__name__"))));
}

std::shared_ptr<void> share(dec::AlignedBuffer buffer) {
  return std::shared_ptr<void>(buffer.release(), dec::AvFreeDeleter());
}

// (frames [T, H, W, 3] uint8 capsule, frame indices, frame times in seconds)
py::tuple frame_batch_to_python(dec::FrameBatch batch) {
  void* data = batch.data.get();
  auto capsule = pyvideo::python::make_capsule(share(std::move(batch.data)), data,
                                               {batch.num_frames, batch.height, batch.width, 3}, DType::uint8);
  return py::make_tuple(capsule, batch.indices, batch.seconds);
}

dec::ResizeSpec resize_spec(int width, int height, int short_side) { return dec::ResizeSpec{width, height, short_side}; }

py::dict video_info_dict(const dec::VideoStreamInfo& v) {
  py::dict d;
  d["stream_index"] = v.stream_index;
  d["codec"] = v.codec;
  d["pixel_format"] = v.pixel_format;
  d["width"] = v.width;
  d["height"] = v.height;
  d["rotation"] = v.rotation;
  d["fps"] = v.fps;
  d["num_frames"] = v.num_frames;
  d["duration"] = v.duration;
  d["start_time"] = v.start_time;
  d["bit_rate"] = v.bit_rate;
  d["time_base"] = py::make_tuple(v.time_base.num, v.time_base.den);
  return d;
}

py::dict audio_info_dict(const dec::AudioStreamInfo& a) {
  py::dict d;
  d["stream_index"] = a.stream_index;
  d["codec"] = a.codec;
  d["sample_format"] = a.sample_format;
  d["sample_rate"] = a.sample_rate;
  d["channels"] = a.channels;
  d["duration"] = a.duration;
  d["start_time"] = a.start_time;
  d["bit_rate"] = a.bit_rate;
  d["time_base"] = py::make_tuple(a.time_base.num, a.time_base.den);
  return d;
}

py::dict media_info_dict(const dec::MediaInfo& info) {
  py::dict d;
  d["name"] = info.name;
  d["container"] = info.container;
  d["duration"] = info.duration;
  d["bit_rate"] = info.bit_rate;
  py::list streams;
  for (const auto& s : info.streams) {
    py::dict stream;
    stream["index"] = s.index;
    stream["type"] = s.media_type;
    stream["codec"] = s.codec;
    streams.append(stream);
  }
  d["streams"] = streams;
  d["video"] = info.video ? py::object(video_info_dict(*info.video)) : py::none();
  d["audio"] = info.audio ? py::object(audio_info_dict(*info.audio)) : py::none();
  return d;
}

template <class Decoder, class Call>
auto without_gil(Decoder& decoder, Call call) {
  py::gil_scoped_release release;
  return call(decoder);
}

void bind_video_decoder(py::module_& m) {
  py::class_<dec::VideoDecoder>(m, "VideoDecoder",
                                "Decodes RGB frames of a video file or buffer: by index, by time, or for [start, end).")
      .def(py::init([](py::handle source, int num_threads, int width, int height, int short_side,
                       const std::string& interpolation, const std::string& name) {
             dec::VideoDecoderOptions options;
             options.num_threads = num_threads;
             options.resize = resize_spec(width, height, short_side);
             options.interpolation = dec::parse_interpolation(interpolation);
             dec::MediaSource media = media_source(source, name);
             py::gil_scoped_release release;
             return std::make_unique<dec::VideoDecoder>(media, options);
           }),
           py::arg("source"), py::arg("num_threads") = 0, py::arg("width") = 0, py::arg("height") = 0,
           py::arg("short_side") = 0, py::arg("interpolation") = "bilinear", py::arg("name") = "")
      .def_property_readonly("has_video", &dec::VideoDecoder::has_video)
      .def_property_readonly("output_size", [](const dec::VideoDecoder& d) {
        return py::make_tuple(d.output_height(), d.output_width());
      })
      .def("info", [](const dec::VideoDecoder& d) { return media_info_dict(d.info()); })
      .def("frame_seconds", &dec::VideoDecoder::frame_seconds)
      .def("frames_at", [](dec::VideoDecoder& d, const std::vector<int64_t>& indices) {
        return frame_batch_to_python(without_gil(d, [&](auto& x) { return x.frames_at(indices); }));
      }, py::arg("indices"))
      .def("frames_at_times", [](dec::VideoDecoder& d, const std::vector<double>& seconds) {
        return frame_batch_to_python(without_gil(d, [&](auto& x) { return x.frames_at_times(seconds); }));
      }, py::arg("seconds"))
      .def("frames_in_range", [](dec::VideoDecoder& d, double start, double end) {
        return frame_batch_to_python(without_gil(d, [&](auto& x) { return x.frames_in_range(start, end); }));
      }, py::arg("start"), py::arg("end"))
      .def_property_readonly("frames_decoded", &dec::VideoDecoder::frames_decoded)
      .def_property_readonly("seeks", &dec::VideoDecoder::seeks);
}

void bind_audio_decoder(py::module_& m) {
  py::class_<dec::AudioDecoder>(m, "AudioDecoder", "Decodes float32 audio samples for [start, end).")
      .def(py::init([](py::handle source, int sample_rate, bool mono, const std::string& name) {
             dec::AudioDecoderOptions options;
             options.sample_rate = sample_rate;
             options.mono = mono;
             dec::MediaSource media = media_source(source, name);
             py::gil_scoped_release release;
             return std::make_unique<dec::AudioDecoder>(media, options);
           }),
           py::arg("source"), py::arg("sample_rate") = 0, py::arg("mono") = true, py::arg("name") = "")
      .def("info", [](const dec::AudioDecoder& d) { return audio_info_dict(d.info()); })
      .def_property_readonly("sample_rate", &dec::AudioDecoder::output_sample_rate)
      .def_property_readonly("channels", &dec::AudioDecoder::output_channels)
      .def("samples_in_range", [](dec::AudioDecoder& d, double start, double end) {
        dec::AudioBatch batch = without_gil(d, [&](auto& x) { return x.samples_in_range(start, end); });
        void* data = batch.data.get();
        auto capsule = pyvideo::python::make_capsule(share(std::move(batch.data)), data,
                                                     {batch.channels, batch.num_samples}, DType::float32);
        return py::make_tuple(capsule, batch.first_sample);
      }, py::arg("start"), py::arg("end"), "([channels, samples] float32 capsule, index of the first sample)");
}

}  // namespace

PYVIDEO_BINDINGS(decode) {
  py::module_ sub = m.def_submodule("decode", "FFmpeg-based video, audio and image decoding (csrc/decode)");
  static py::exception<dec::DecodeError> decode_error(sub, "VideoDecodeError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const dec::DecodeError& e) {
      PyErr_SetString(decode_error.ptr(), e.what());
    }
  });
  bind_video_decoder(sub);
  bind_audio_decoder(sub);
  sub.def("default_threads", &dec::default_decoder_threads);
  sub.def("decode_image_files",
          [](const std::vector<std::string>& paths, int num_threads, int width, int height, int short_side,
             const std::string& interpolation) {
            const dec::Interpolation mode = dec::parse_interpolation(interpolation);
            dec::FrameBatch batch;
            {
              py::gil_scoped_release release;
              batch = dec::decode_image_files(paths, num_threads, resize_spec(width, height, short_side), mode);
            }
            return py::object(frame_batch_to_python(std::move(batch))[0]);
          },
          py::arg("paths"), py::arg("num_threads") = 0, py::arg("width") = 0, py::arg("height") = 0,
          py::arg("short_side") = 0, py::arg("interpolation") = "bilinear",
          "Decodes JPEG/PNG files into a [T, H, W, 3] uint8 capsule.");
  sub.def("encode_video",
          [](const std::string& path, py::handle frames, double fps, const std::string& codec, int64_t bit_rate,
             const std::string& pixel_format, int width, int height, bool input_is_bgr,
             const std::map<std::string, std::string>& codec_options) {
            auto tensor = pyvideo::python::tensor_arg(frames, "frames", DType::uint8, 4);
            if (tensor.shape[3] != 3) throw std::invalid_argument("frames must be [T, H, W, 3] uint8");
            dec::EncoderOptions options;
            options.codec = codec;
            options.fps = fps;
            options.bit_rate = bit_rate;
            options.pixel_format = pixel_format;
            options.width = width;
            options.height = height;
            options.input_is_bgr = input_is_bgr;
            options.codec_options.assign(codec_options.begin(), codec_options.end());
            py::gil_scoped_release release;
            dec::encode_video(path, tensor.ptr<uint8_t>(), tensor.shape[0], static_cast<int>(tensor.shape[1]),
                              static_cast<int>(tensor.shape[2]), options);
          },
          py::arg("path"), py::arg("frames"), py::arg("fps"), py::arg("codec") = "mpeg4", py::arg("bit_rate") = 0,
          py::arg("pixel_format") = "", py::arg("width") = 0, py::arg("height") = 0, py::arg("input_is_bgr") = false,
          py::arg("codec_options") = std::map<std::string, std::string>{},
          "Writes [T, H, W, 3] uint8 RGB (or BGR) frames to a video file.");
}
#endif  // PYVIDEO_HAVE_FFMPEG
