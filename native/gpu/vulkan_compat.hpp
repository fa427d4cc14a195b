// Force-included into ggml-vulkan.cpp (see CMakeLists.txt). Its instance
// set-up names VK_EXT_layer_settings types, which Vulkan headers before
// 1.3.261 lack (Debian 12 ships 1.3.239). Declared here from the Vulkan
// specification; the structure is only read by the validation layer, which
// ggml asks for when GGML_VK_VALIDATE is set.
#pragma once
#include <cstdint>
#include <vector>
// vulkan.hpp is configured once, by whoever includes it first: this header.
// So it must set what ggml-vulkan.cpp sets before its own include: the
// dynamic dispatcher, reached through ggml's ggml_vk_default_dispatcher().
// Otherwise extension functions (vkGetPipelineExecutableStatisticsKHR) are
// linked directly, or vulkan.hpp's own dispatcher storage is expected, and
// the library fails to load.
#include <vulkan/vulkan_core.h>
#define VULKAN_HPP_DISPATCH_LOADER_DYNAMIC 1
#if VK_HEADER_VERSION >= 301
namespace vk::detail { class DispatchLoaderDynamic; }
vk::detail::DispatchLoaderDynamic &ggml_vk_default_dispatcher();
#else
namespace vk { class DispatchLoaderDynamic; }
vk::DispatchLoaderDynamic &ggml_vk_default_dispatcher();
#endif
#define VULKAN_HPP_DEFAULT_DISPATCHER ggml_vk_default_dispatcher()
#include <vulkan/vulkan.hpp>

#if VK_HEADER_VERSION < 261
namespace vk {
enum class LayerSettingTypeEXT : int32_t { eBool32 = 0 };

struct LayerSettingEXT {
	const char *pLayerName;
	const char *pSettingName;
	LayerSettingTypeEXT type;
	uint32_t valueCount;
	const void *pValues;
};

struct LayerSettingsCreateInfoEXT {
	explicit LayerSettingsCreateInfoEXT(const std::vector<LayerSettingEXT> &settings)
		: settingCount(uint32_t(settings.size())), pSettings(settings.data()) {}
	VkStructureType sType = VkStructureType(1000496000); // VK_STRUCTURE_TYPE_LAYER_SETTINGS_CREATE_INFO_EXT
	const void *pNext = nullptr;
	uint32_t settingCount;
	const LayerSettingEXT *pSettings;
};
} // namespace vk
#endif
