package clientpb

// The content kinds that carry an uploaded file, named as their fields of
// Content's oneof.
const (
	MediaImage = "image"
	MediaAudio = "audio"
	MediaVideo = "video"
	MediaFile  = "file"
)

// MediaOf returns the Media that c carries and its kind (MediaImage,
// MediaAudio, MediaVideo or MediaFile); nil and "" for content of another
// kind. The Media of a kind set in Go without one is nil.
func MediaOf(c *Content) (*Media, string) {
	switch k := c.GetKind().(type) {
	case *Content_Image:
		return k.Image, MediaImage
	case *Content_Audio:
		return k.Audio, MediaAudio
	case *Content_Video:
		return k.Video, MediaVideo
	case *Content_File:
		return k.File, MediaFile
	}
	return nil, ""
}

// MediaContent returns content of kind carrying m; nil for a kind that is
// not one of the media kinds.
func MediaContent(kind string, m *Media) *Content {
	switch kind {
	case MediaImage:
		return &Content{Kind: &Content_Image{Image: m}}
	case MediaAudio:
		return &Content{Kind: &Content_Audio{Audio: m}}
	case MediaVideo:
		return &Content{Kind: &Content_Video{Video: m}}
	case MediaFile:
		return &Content{Kind: &Content_File{File: m}}
	}
	return nil
}
